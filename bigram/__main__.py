from bigram.cli import main

main()
