// Placeholder until the mindspore module lands.
