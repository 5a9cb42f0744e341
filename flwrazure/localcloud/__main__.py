"""`python -m flwrazure.localcloud serve`: the local cloud's server process (started by `flwrazure local up`)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from flwrazure.localcloud.server import LocalCloudServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flwrazure.localcloud")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--state", type=Path, required=True)
    serve.add_argument("--port", type=int, default=0)
    serve.add_argument("--latency", type=float, default=0.0)
    serve.add_argument("--profile", choices=["none", "azure"], default="none")
    serve.add_argument("--time-scale", type=float, default=1.0)
    serve.add_argument("--no-throttling", action="store_true")
    serve.add_argument("--faults", type=Path)
    serve.add_argument("--catalog", type=Path)
    serve.add_argument("--hosts", choices=["auto", "nspawn", "none"], default="auto")
    serve.add_argument("--boot-delay", type=float, default=2.0)
    serve.add_argument("--prefetch", action="append", default=[])
    serve.add_argument("--no-systemd", action="store_true")
    serve.add_argument("--vm-cpu", type=float, default=None)
    serve.add_argument("--image-source", choices=["image", "host"], default="image")
    serve.add_argument("--provision-lag", type=float, default=0.0)
    serve.add_argument("--first-boot-apt", type=float, default=0.0)
    serve.add_argument("--conflicts", action="store_true")
    serve.add_argument("--policy-extension", action="append", default=[])
    args = parser.parse_args(argv)

    config: dict = {"latency": args.latency, "profile": args.profile, "time_scale": args.time_scale,
                    "throttling": not args.no_throttling}
    if args.conflicts:
        config["conflicts"] = True
    if args.policy_extension:
        config["policy_extensions"] = args.policy_extension
    if args.catalog:
        config["catalog"] = json.loads(args.catalog.read_text())
    faults = json.loads(args.faults.read_text()) if args.faults else None
    server = LocalCloudServer(args.state, port=args.port, config=config, faults=faults, hosts=args.hosts,
                              boot_delay=args.boot_delay, systemd=not args.no_systemd,
                              vm_cpu=args.vm_cpu, image_source=args.image_source,
                              provision_lag=args.provision_lag, first_boot_apt=args.first_boot_apt,
                              say=lambda line: print(line, flush=True))
    if args.prefetch:
        from flwrazure.localcloud.mirror import prefetch

        prefetch(args.prefetch, args.state / "wheelhouse", python=server.vm_python())
    server.resume_hosts()
    info_path = args.state / "server.json"
    info = {**server.info(), "pid": os.getpid(), "latency": args.latency, "profile": args.profile,
            "time_scale": args.time_scale, "throttling": not args.no_throttling}
    tmp = info_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info, indent=2))
    tmp.chmod(0o600)
    os.replace(tmp, info_path)

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        try:
            if json.loads(info_path.read_text()).get("pid") == os.getpid():
                info_path.unlink()
        except (OSError, ValueError):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
