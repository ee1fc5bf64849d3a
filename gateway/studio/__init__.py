"""gateway.studio"""
