"""mtlclassic.features"""
