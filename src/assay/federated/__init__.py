"""Federated fine-tuning: sites train the LoRA adapter on their own rows, the coordinator
averages; only adapter states, row counts and validation scores cross the exchange."""
