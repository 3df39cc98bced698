"""The Pro plugins shipped with RAT, off by default: rat-auth, rat-sharing, rat-namespaces, rat-audit."""
