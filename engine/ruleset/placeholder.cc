// Placeholder until the ruleset module lands.
