"""The virtual CCCD chip: profile -> LDS files signed by a test PKI -> APDU engine -> vpcd connection."""
