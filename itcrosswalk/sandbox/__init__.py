"""The sandbox: the seeded city world and the loopback HTTPS server that runs the emulators."""
