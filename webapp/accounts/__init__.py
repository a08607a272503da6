"""Account emails: verification of an address, password reset and set-your-password invitations."""
