"""Communicators: how provisioners reach the machine (``ssh``, ``none``).

Import the submodules directly (``amibake.communicator.ssh``); this package imports nothing so
that ``validate`` never pays for asyncssh.
"""
