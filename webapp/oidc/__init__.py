"""Single sign-on with OpenID Connect: configured providers, the authorization-code flow, linked identities."""
