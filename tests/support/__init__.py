"""Test support: real servers started on free loopback ports, and the stand-ins the tests need."""
