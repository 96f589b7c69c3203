#include <iostream>
int main(int argc, char** argv) { std::cout << "dnnswarm\n"; return 0; }
