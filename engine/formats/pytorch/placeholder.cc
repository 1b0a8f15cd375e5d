// Placeholder until the pytorch module lands.
