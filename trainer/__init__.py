"""Joint training of the generator and the retriever (JMLR) and the evaluation that compares systems.

`python -m trainer train --config trainer/configs/default.toml`, `python -m trainer evaluate ...`.
The trainer imports the assistant's pieces; the assistant never imports the trainer.
"""
