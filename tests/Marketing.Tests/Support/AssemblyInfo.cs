// Test classes run in parallel (each against its own campaigns and customers); the emulator is shared.
[assembly: Xunit.CollectionBehavior(MaxParallelThreads = 4)]
