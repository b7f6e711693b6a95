"""Memory vs Learning Lab: the core library.

A frozen GGUF model answers questions (engine), corrections are kept outside it in a
semantic memory (memory), and a LoRA adapter can bake the same corrections into the
weights (adapters). The agent puts the pieces together into four arms: base, memory,
learned and both. This package never imports streamlit: the pages are thin views on it.
"""

__version__ = "0.1.0"
