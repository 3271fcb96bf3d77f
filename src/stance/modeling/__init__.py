"""Models: input encoding, save/load of every model kind, the one inference engine, training, evaluation."""
