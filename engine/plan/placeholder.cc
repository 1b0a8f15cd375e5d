// Placeholder until the plan module lands.
