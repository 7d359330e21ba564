"""safety/: what keeps a user's files whole. Standard library only (checkpoints.py adds torch).

    layout.py       the run directory's file names and model kinds, declared once
    atomic.py       every file bigram writes: a temporary file renamed into place
    rundir.py       run directories on disk: marker and status, --out checks, the newest finished run
    checkpoints.py  torch files: atomic saves, weights_only loads, checks of what was loaded
    interrupt.py    Ctrl-C held while heavy libraries import, raised where it is safe

Layer 0 (base): imports only the standard library, torch, bigram.errors, bigram.text and each other.
"""
