"""What flwrazure keeps and finds on the operator's own machine (the workstation that runs the CLI): where its files
live (settings), each cluster's local record (state), the cluster's SSH key (sshkeys), CA, SuperLink and SuperNode
keys (certs), the user's flwr connection (flwrconfig) and the operator's public address (operator). Commands use
these; none of them calls Azure or SSH."""
