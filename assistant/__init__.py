"""The chain: questions (and chat history) to cited answers."""
