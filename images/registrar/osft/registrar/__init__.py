"""osft register stage: SageMaker endpoint and OpenSearch ML Commons registration."""
