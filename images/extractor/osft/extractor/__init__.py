"""osft extract stage: documents from OpenSearch, S3 or local files, validated, cleaned, sampled."""
