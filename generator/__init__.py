"""modelgen: CNN design patterns -> one standalone, readable Keras 3 model file.

The pipeline runs one way: spec -> validate -> plan -> render -> format -> write.
Nothing here imports keras or tensorflow.
"""

__version__ = "0.1.0"
