from flwrazure.cli import main

main()
