"""Technician provisioning: identity, certificates, configuration, self-test."""
