"""``python -m finetune --config FILE [key=value ...]``: the same command, for ``accelerate launch -m finetune``."""

from finetune.cli import main

main()
