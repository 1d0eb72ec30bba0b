"""Networks: thin dynamic ops, the elastic ResNet-48 supernet and its static export."""
