"""The kernel: what every other part of dermassist stands on (case, report contract, errors, ontology, skin-tone
scales, image intake, the message builder, the retrieval protocol, a generic registry). It imports nothing else of the
project but the prompt templates; tests/test_architecture.py keeps it so."""
