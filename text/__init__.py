"""Text forms and stable hashing shared by every stage: what "the same text" means, and where a key goes."""
