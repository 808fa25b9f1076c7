"""Fine-tuning: TRL ``SFTTrainer`` + PEFT recipes that turn public dermatology datasets into a better report writer.

* ``finetune.data`` builds chat-format SFT data from the eval harness's dataset adapters: report targets
  (``ReportDraft`` from the label, the ontology and the passages the real retriever returns), VQA / caption turns,
  patient/lesion-level splits, class / skin-tone balanced sampling and a dataset card.
* ``finetune.recipes`` holds one module per method (``lora``, ``qlora``, ``full``) in one ``Registry``.
* ``finetune/configs/<model>/<method>.yaml`` are runnable configs; ``dermassist finetune --config FILE [k=v ...]``
  (``finetune.cli``) runs them with resume, harness evaluation, TensorBoard logs and adapter/merged export.

See docs/finetune.md.
"""
