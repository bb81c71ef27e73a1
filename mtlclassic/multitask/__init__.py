"""mtlclassic.multitask"""
