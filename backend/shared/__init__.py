"""Code shared by every genstack function: settings, errors, models, AWS clients,
the model registry, the job repository and the Bedrock providers."""
