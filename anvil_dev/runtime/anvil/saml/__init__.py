"""`anvil.saml`: SAML sign-in through the Users service."""
