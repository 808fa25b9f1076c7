def main():
    print("dermassist 0.1.0")
