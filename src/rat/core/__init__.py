"""Kernel: errors, identifiers, wire shapes. Depends on the standard library and msgspec only."""
