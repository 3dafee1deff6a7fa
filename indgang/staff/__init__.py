"""The staff side: accounts, the audit log, the inbox, and what staff do with a conversation."""
