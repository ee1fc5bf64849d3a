"""gateway.burns"""
