"""osft querygen stage: synthetic (query, document) pairs, filtered and split into train and held-out."""
