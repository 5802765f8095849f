"""Evidence bundles: build, sign (the collector's Ed25519 manifest signature) and verify offline."""
