//! Unit tests of the replica core: a standalone replica stepped by hand.
