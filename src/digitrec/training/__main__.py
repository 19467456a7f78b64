"""``python -m digitrec.training`` and ``torchrun -m digitrec.training``: the training command (``launch``)."""
from .launch import main

if __name__ == "__main__":
    main()
