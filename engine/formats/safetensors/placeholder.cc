// Placeholder until the safetensors module lands.
