"""Neural-network building blocks shared by every architecture."""
