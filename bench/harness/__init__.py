"""What the benchmarks share: real servers in child processes, a scripted model gateway, a
lean HTTP load generator, and the figures they print (always with the machine they ran on)."""
