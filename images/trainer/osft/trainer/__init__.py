"""osft train and evaluate stages, exports, and the serving container."""
