"""The model server of the trainer image: the SageMaker inference contract plus ``/embed``, ``/info`` and ``/metrics``.

``serve`` (the image's default command) starts it on port 8080 with the model in ``/opt/ml/model``.
"""
