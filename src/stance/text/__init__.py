"""Reading articles, cleaning and segmenting them, finding actors, pairing (sentence, actor)."""
