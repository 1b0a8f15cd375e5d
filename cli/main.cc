// convert_weight: argument parsing only; the engine does the work.
int main() { return 0; }
