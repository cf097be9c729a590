"""Embedding, Chroma and retrieval: chunks in, ranked sections out."""
