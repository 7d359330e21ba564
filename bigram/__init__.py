"""bigram: character-level bigram language models, from counts to a one-hot neural net.

Importing the package is cheap; torch loads when a submodule that needs it is imported.
"""

__version__ = "0.1.0"
