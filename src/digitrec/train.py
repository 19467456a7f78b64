"""``python -m digitrec.train`` and ``torchrun -m digitrec.train``: the training command (``digitrec.training``)."""
from .training.launch import main

if __name__ == "__main__":
    main()
