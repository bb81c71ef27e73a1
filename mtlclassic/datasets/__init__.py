"""mtlclassic.datasets"""
